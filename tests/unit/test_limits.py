"""The open-file limit is raised as far as allowed, and a shortfall is reported."""

import resource

from server.infra.limits import raise_open_file_limit


def test_limit_raised_to_the_hard_limit_and_enough_for_a_small_count():
    line = raise_open_file_limit(10)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == resource.RLIM_INFINITY or soft == hard
    assert line.startswith("open-file limit") and "MAX_CONNECTIONS=10" in line


def test_a_count_beyond_the_hard_limit_is_reported():
    line = raise_open_file_limit(10**9)
    assert line.startswith("warning:") and "MAX_CONNECTIONS=1000000000" in line
