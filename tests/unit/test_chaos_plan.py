"""A chaos run's schedule comes from its seed alone."""

from __future__ import annotations

from collections import Counter

from tests.chaos import plan


def test_one_seed_gives_one_schedule_and_another_seed_another() -> None:
    profile = plan.PROFILES["short"]
    first, again, other = plan.build(7, profile), plan.build(7, profile), plan.build(8, profile)
    assert first == again and first.digest() == again.digest()
    assert first.digest() != other.digest()


def test_every_fault_kind_is_scheduled_as_often_as_the_profile_says() -> None:
    for profile in plan.PROFILES.values():
        chosen = plan.build(1, profile)
        assert Counter(f.kind for f in chosen.faults) == dict.fromkeys(plan.FAULTS, profile.faults_per_kind)
        assert all(0 <= f.at < profile.seconds for f in chosen.faults)
        assert len(chosen.journeys) == profile.journeys
        assert {j.fate for j in chosen.journeys} == set(plan.FATES)


def test_the_long_profile_is_as_long_as_the_issue_asks() -> None:
    long = plan.PROFILES["long"]
    assert long.seconds >= 600 and long.journeys >= 5000 and long.faults_per_kind >= 30
