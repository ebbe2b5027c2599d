"""Settings modules: `base` (everything, from the environment), `local` (embedded defaults for `make run`),
`test` (pytest) and `production` (passes `manage.py check --deploy`)."""
