"""The model checker: a reference model, the named invariants and the state machines."""
