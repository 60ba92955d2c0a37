"""Development tools shared by the tests, the benchmarks and the local end-to-end run."""
