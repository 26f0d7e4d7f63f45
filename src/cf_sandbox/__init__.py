"""A local Cloud Foundry + UAA + Cloud Integration landscape for tests, demo and benchmarks."""
