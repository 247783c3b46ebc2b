"""Detection: rule kinds, the YAML loader and linter, the engine, the rule-test runner."""
