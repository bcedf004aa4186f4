"""In-process text models: the built-in offline default and any local or Hugging Face causal LM."""
