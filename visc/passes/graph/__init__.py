"""visc.passes.graph"""
