"""The exit codes of ``mlops-lab`` commands that scripts, CI jobs and cron branch on.

0 is success everywhere. A workflow step reads these (``.github/workflows``), so they are named once here
and the demos that explain them show the same numbers.
"""

EXIT_FAILED = 1  # a refusal: invalid data, a damaged backup, a failed reset, not reproducible
EXIT_INVALID_DATA = 1  # train / validate: the data contract refused the file; nothing was trained
EXIT_FIRED = 2  # monitor: a check fired (whatever the retrain did)
EXIT_GATE_REJECTED = 3  # train: the quality gate refused the candidate; nothing was registered
EXIT_INVALID_PARAMS = 1  # any command: the params file does not hold together (every problem listed); nothing ran
