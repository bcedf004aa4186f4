"""Wire schemas (pydantic), one module per resource, fields in the order of the OpenAI reference."""
