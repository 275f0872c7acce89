"""gengbao's test suite: a package, so every module has one name (``tests.test_cases``)."""
