"""SpineBench test suite (a package so that tests/<pkg>/ folders never shadow top-level modules such as platform)."""
