"""Test-side machinery for real worker processes: a Celery worker started by a test (with test-only hooks such as a
pause inside a chosen function), and the whole embedded site (`spinebench serve`) on a throwaway var folder. Fault
tests (kill a worker mid-job, restart a service) build on these; production code has no test hooks."""
