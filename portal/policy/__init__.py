"""The role-policy adapter: casbin over the files in ``policies/``, implementing RolePolicy."""

from portal.policy.casbin_policy import (
    CasbinRolePolicy,
    PolicyFileError,
    default_policies_dir,
    load_role_mapping,
    map_groups,
)

__all__ = [
    "CasbinRolePolicy",
    "PolicyFileError",
    "default_policies_dir",
    "load_role_mapping",
    "map_groups",
]
