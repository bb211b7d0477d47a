"""visc.runtime"""
