"""Client-side Python of the toolkit: data preparation, the SageMaker launcher, verification."""
