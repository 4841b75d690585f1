//! Sources and sinks behind one registry: CSV, JSON lines, standard input/output.
