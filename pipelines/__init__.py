"""How models are made: data, validation, features, training, the quality gate, the registry, flows."""
