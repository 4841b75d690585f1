//! Lexer, AST and parser.
