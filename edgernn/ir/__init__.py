"""The model's intermediate representation: tensors and graphs, quantisation parameters,
stream state."""
