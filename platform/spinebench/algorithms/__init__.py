"""Algorithm containers: uploaded `docker save` archives, validated, loaded and run sandboxed against a phase's
cases."""
