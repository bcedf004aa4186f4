from typing import Literal

Quantization = Literal["none", "int8"]
"""How the engine stores linear layers' weights: as loaded, or int8 with activations quantized per call."""
