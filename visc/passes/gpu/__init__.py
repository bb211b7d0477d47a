"""visc.passes.gpu"""
