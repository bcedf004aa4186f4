"""Twenty functions with varied parameter schemas, each with a question that calls for it: nested objects,
arrays, enums, integers and numbers with bounds, optional fields, nullable fields, strings with formats
(date, email, uuid, ipv4) and patterns (times of day), a function without parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    parameters: dict[str, Any] | None
    question: str
    shape: str
    """What the schema exercises, for the results table."""


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


STRING = {"type": "string"}
CLOCK = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"}
"""A time of day. Not `format: time`: RFC 3339's full-time needs an offset, which jsonschema's checker here
refuses, and llguidance's takes any number of fractional digits (the 135M model wrote them on and on)."""
CASES: list[Case] = [
    Case(
        "get_weather",
        "Get the current weather in a city",
        _object({"city": STRING, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}),
        "What is the weather in Paris?",
        "string, enum",
    ),
    Case(
        "add_numbers",
        "Add two integers",
        _object({"a": {"type": "integer"}, "b": {"type": "integer"}}),
        "What is 17 plus 25?",
        "integers",
    ),
    Case(
        "convert_currency",
        "Convert an amount of money between currencies",
        _object(
            {
                "amount": {"type": "number", "minimum": 0},
                "from": {"type": "string", "enum": ["USD", "EUR", "GBP", "JPY"]},
                "to": {"type": "string", "enum": ["USD", "EUR", "GBP", "JPY"]},
            }
        ),
        "How much is 120.5 US dollars in euros?",
        "number with minimum, enums",
    ),
    Case(
        "create_user",
        "Create a user account",
        _object(
            {
                "name": STRING,
                "email": {"type": "string", "format": "email"},
                "age": {"type": "integer", "minimum": 13, "maximum": 120},
                "newsletter": {"type": "boolean"},
            },
            required=["name", "email"],
        ),
        "Sign up Ada Lovelace, ada@example.com, 36 years old.",
        "email format, bounded integer, optional fields",
    ),
    Case(
        "book_flight",
        "Book a flight",
        _object(
            {
                "origin": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "destination": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "date": {"type": "string", "format": "date"},
                "passengers": {"type": "integer", "minimum": 1, "maximum": 9},
                "cabin": {"type": "string", "enum": ["economy", "business", "first"]},
            },
            required=["origin", "destination", "date"],
        ),
        "Book me a flight from JFK to CDG on 2026-05-14 for two people.",
        "patterns, date format, optional enum",
    ),
    Case(
        "set_alarm",
        "Set an alarm",
        _object(
            {
                "time": CLOCK,
                "label": STRING,
                "repeat": {
                    "type": "array",
                    "items": {"enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
                },
            },
            required=["time"],
        ),
        "Wake me up at 07:30:00 on weekdays.",
        "time pattern, array of enums",
    ),
    Case(
        "search_products",
        "Search the product catalogue",
        _object(
            {
                "query": STRING,
                "filters": _object(
                    {
                        "min_price": {"type": "number"},
                        "max_price": {"type": "number"},
                        "brands": {"type": "array", "items": STRING, "maxItems": 5},
                    },
                    required=[],
                ),
                "sort": {"type": "string", "enum": ["relevance", "price_asc", "price_desc"]},
            },
            required=["query"],
        ),
        "Find running shoes under 100 dollars.",
        "nested object of optional fields",
    ),
    Case(
        "create_order",
        "Place an order",
        _object(
            {
                "customer_id": {"type": "string", "format": "uuid"},
                "items": {
                    "type": "array",
                    "items": _object({"sku": STRING, "quantity": {"type": "integer", "minimum": 1}}),
                    "minItems": 1,
                    "maxItems": 10,
                },
                "express": {"type": "boolean"},
            }
        ),
        "Order two SKU-12 and one SKU-40 for customer 5f0c7b9e-2d4a-4c51-9a8e-1b2c3d4e5f60, express.",
        "uuid format, array of objects",
    ),
    Case(
        "send_email",
        "Send an email",
        _object(
            {
                "to": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 1},
                "cc": {"type": "array", "items": {"type": "string", "format": "email"}},
                "subject": {"type": "string", "maxLength": 80},
                "body": STRING,
            },
            required=["to", "subject", "body"],
        ),
        "Email bob@example.com that the meeting moves to Friday.",
        "array of emails, maxLength, optional array",
    ),
    Case(
        "get_time",
        "The current time in a time zone",
        _object({"zone": STRING}),
        "What time is it in Tokyo?",
        "one string",
    ),
    Case(
        "list_files",
        "List the files in the current directory",
        None,
        "Which files are here?",
        "no parameters",
    ),
    Case(
        "schedule_meeting",
        "Schedule a meeting",
        _object(
            {
                "title": STRING,
                "date": {"type": "string", "format": "date"},
                "start": CLOCK,
                "duration_minutes": {"type": "integer", "enum": [15, 30, 45, 60, 90]},
                "attendees": {
                    "type": "array",
                    "items": _object({"name": STRING, "email": {"type": "string", "format": "email"}}),
                    "maxItems": 8,
                },
            },
            required=["title", "date", "start", "duration_minutes"],
        ),
        "Set up a 30 minute design review on 2026-03-02 at 14:00:00 with Ann (ann@example.com).",
        "formats, integer enum, array of nested objects",
    ),
    Case(
        "rate_movie",
        "Rate a movie",
        _object(
            {
                "title": STRING,
                "stars": {"type": "number", "minimum": 0, "maximum": 5, "multipleOf": 0.5},
                "review": {"type": ["string", "null"]},
            }
        ),
        "Give Inception four and a half stars.",
        "number with multipleOf, nullable string",
    ),
    Case(
        "block_ip",
        "Block an IP address at the firewall",
        _object(
            {
                "ip": {"type": "string", "format": "ipv4"},
                "hours": {"type": "integer", "minimum": 1, "maximum": 720},
                "reason": STRING,
            },
            required=["ip"],
        ),
        "Block 203.0.113.7 for a day, it is scanning our ports.",
        "ipv4 format",
    ),
    Case(
        "plot_points",
        "Plot points on a chart",
        _object(
            {
                "points": {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                    "minItems": 1,
                    "maxItems": 6,
                },
                "title": STRING,
            }
        ),
        "Plot (1, 2), (2, 4) and (3, 9).",
        "array of fixed-length number arrays",
    ),
    Case(
        "translate",
        "Translate text",
        _object(
            {
                "text": STRING,
                "source": {"type": "string", "pattern": "^[a-z]{2}$"},
                "target": {"type": "string", "pattern": "^[a-z]{2}$"},
                "formal": {"type": "boolean"},
            },
            required=["text", "target"],
        ),
        "Translate 'good morning' into French.",
        "two-letter patterns, optional fields",
    ),
    Case(
        "update_settings",
        "Update the application's settings",
        _object(
            {
                "theme": {"type": "string", "enum": ["light", "dark", "system"]},
                "notifications": _object(
                    {
                        "email": {"type": "boolean"},
                        "push": {"type": "boolean"},
                        "quiet_hours": _object(
                            {
                                "start": CLOCK,
                                "end": CLOCK,
                            }
                        ),
                    },
                    required=["email", "push"],
                ),
            },
            required=["theme"],
        ),
        "Switch to dark mode and turn off push notifications.",
        "three levels of nesting",
    ),
    Case(
        "log_expense",
        "Record an expense",
        _object(
            {
                "amount": {"type": "number", "exclusiveMinimum": 0},
                "currency": {"type": "string", "enum": ["USD", "EUR"]},
                "category": {"type": "string", "enum": ["food", "travel", "office", "other"]},
                "date": {"type": "string", "format": "date"},
                "tags": {"type": "array", "items": STRING, "maxItems": 4},
            },
            required=["amount", "currency", "category"],
        ),
        "I spent 42.80 euros on lunch with a client yesterday.",
        "exclusiveMinimum, enums, optional date",
    ),
    Case(
        "create_event",
        "Create a calendar event, online or in a room",
        _object(
            {
                "title": STRING,
                "location": {
                    "anyOf": [
                        _object({"room": STRING, "floor": {"type": "integer"}}),
                        _object({"url": {"type": "string", "pattern": "^https://"}}),
                    ]
                },
            }
        ),
        "Create a standup in room Oak on floor 3.",
        "anyOf of two object shapes",
    ),
    Case(
        "resize_image",
        "Resize an image",
        _object(
            {
                "file": {"type": "string", "pattern": "^[\\w.-]+\\.(png|jpg)$"},
                "width": {"type": "integer", "minimum": 1, "maximum": 8192},
                "height": {"type": "integer", "minimum": 1, "maximum": 8192},
                "keep_aspect": {"type": "boolean"},
            },
            required=["file", "width"],
        ),
        "Make cat.png 640 pixels wide.",
        "file-name pattern, bounded integers",
    ),
]
