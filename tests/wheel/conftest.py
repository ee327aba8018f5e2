"""project/ is a user's repository that the wheel job runs from an empty directory with
the installed wheel; the project's own test run must not collect it."""

collect_ignore = ["project", "run_wheel_job.py"]
