"""Referrals between agencies and the care team they decide."""
