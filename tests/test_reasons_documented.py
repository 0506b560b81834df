"""Every reason a compile can run locally for is a stats counter that README.md explains."""

from __future__ import annotations

import re

from tests.helpers import REPO

REASON = re.compile(r'\b(?:Failure|Local|_Retry)\(\s*"([a-z_]+)"')
SERVER_REASONS = re.compile(r'self\._local\([^)]*?"([a-z_]+)"')


def test_every_fallback_reason_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    sources = [*REPO.glob("adapter/*.py"), *REPO.glob("include_server/*.py")]
    reasons = set()
    for path in sources:
        text = path.read_text()
        reasons |= set(REASON.findall(text)) | set(SERVER_REASONS.findall(text))
    assert {"not_compile", "no_workers", "worker_error"} <= reasons  # the scan finds them
    undocumented = sorted(r for r in reasons if f"`{r}`" not in readme)
    assert undocumented == []
