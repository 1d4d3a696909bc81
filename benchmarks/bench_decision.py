"""decide() latency for 1, 10 and 100 consents, beside a bare casbin enforce() in the same run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import casbin

from portal.domain.consent import (
    ConsentKind,
    ConsentStatus,
    Directive,
    Provision,
    ProvisionEffect,
    Signature,
    SignatureMethod,
    SignerRelation,
)
from portal.domain.decision import (
    AccessRequest,
    Actor,
    CareTeamLink,
    Organization,
    ParticipantContext,
    decide,
)
from portal.domain.vocabulary import Action, DataCategory, Purpose, Role, Sector
from portal.policy.casbin_policy import CasbinRolePolicy, default_policies_dir

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
HARBOR = Organization("harbor-lead", Sector.CASE_MANAGEMENT)
HOPE = Organization("hope-housing", Sector.HOUSING)
PID = "bench-participant"


def _consents(n: int) -> tuple[Directive, ...]:
    signature = Signature(SignatureMethod.TYPED, "A B", SignerRelation.SELF, NOW)
    out = []
    for i in range(n):
        # Only the last consent matches: the worst case scans every one.
        recipient = "org:hope-housing" if i == n - 1 else f"org:partner-{i}"
        out.append(Directive(
            id=f"c{i:04d}", participant_id=PID, kind=ConsentKind.ROI,
            status=ConsentStatus.ACTIVE,
            provisions=(
                Provision(ProvisionEffect.PERMIT, frozenset({"org:harbor-lead"}),
                          frozenset({recipient}),
                          frozenset({DataCategory.HOUSING, DataCategory.PROGRESS}),
                          frozenset({Purpose.CAREMGT})),
                Provision(ProvisionEffect.DENY, frozenset({"sector:case_management"}),
                          frozenset({"sector:police"}), frozenset({DataCategory.CONTACT}),
                          frozenset({Purpose.CAREMGT})),
            ),
            information_description="Housing and progress", revocation_statement="Revocable",
            expires_on=(NOW + timedelta(days=365)).date(), signature=signature))
    return tuple(out)


def _time(fn: Callable[[], object], rounds: int) -> list[float]:
    for _ in range(200):
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    policy = CasbinRolePolicy(default_policies_dir())
    enforcer = casbin.Enforcer(str(default_policies_dir() / "model.conf"),
                               str(default_policies_dir() / "policy.csv"))
    actor = Actor(1, HOPE, frozenset({Role.HOUSING_NAVIGATOR}))
    request = AccessRequest(actor, PID, DataCategory.HOUSING, Action.VIEW, Purpose.CAREMGT, NOW,
                            HARBOR)
    team = (CareTeamLink("harbor-lead", NOW.date()), CareTeamLink("hope-housing", NOW.date()))
    rounds = 5000
    bare = _time(lambda: enforcer.enforce("housing:housing_navigator", "housing", "view",
                                          "CAREMGT"), rounds)
    print(f"{'case':<28}{'median us':>11}{'p99 us':>10}{'p99 / bare enforce p99':>24}")
    print(f"{'bare casbin enforce()':<28}{statistics.median(bare):>11.1f}{_p(bare, .99):>10.1f}"
          f"{1.0:>24.2f}")
    for n in (1, 10, 100):
        context = ParticipantContext(PID, team, _consents(n))
        assert decide(request, context, policy).permitted
        samples = _time(lambda c=context: decide(request, c, policy), rounds)  # type: ignore[misc]
        print(f"{f'decide(), {n} consents':<28}{statistics.median(samples):>11.1f}"
              f"{_p(samples, .99):>10.1f}{_p(samples, .99) / _p(bare, .99):>24.2f}")
    # The same worst case with the policy's verdict cache emptied before every call.
    context = ParticipantContext(PID, team, _consents(100))

    def cold() -> object:
        policy._cache.clear()
        return decide(request, context, policy)

    samples = _time(cold, rounds)
    print(f"{'decide(), 100, cold cache':<28}{statistics.median(samples):>11.1f}"
          f"{_p(samples, .99):>10.1f}{_p(samples, .99) / _p(bare, .99):>24.2f}")
    print("Targets: p99 under 500 us with 100 consents; within 5x of bare enforce().")
