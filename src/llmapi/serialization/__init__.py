"""Wire formats: JSON, XML and Protobuf codecs, and content negotiation between them."""
