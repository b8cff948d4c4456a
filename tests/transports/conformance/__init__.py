"""One test suite, run against every transport (see ``conftest.py`` to add one)."""
