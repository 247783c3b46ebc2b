"""Raw line/JSON -> AccessEvent: one parser per log type, chosen by name or by sniffing."""

from access_audit.parse.base import JsonParser, Parser, ParseResult, ParserRegistry, parser_names, register

__all__ = ["JsonParser", "ParseResult", "Parser", "ParserRegistry", "parser_names", "register"]
