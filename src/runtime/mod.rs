//! The runtime: executes a plan on Timely Dataflow.
