"""SpineBench evaluators: pure-Python metrics, the task registry and the prediction formats (no Django)."""
