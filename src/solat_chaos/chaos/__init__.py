"""Fault injection: simulated adapters of the core's ports and the faults they can inject."""
