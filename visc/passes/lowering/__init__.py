"""visc.passes.lowering"""
