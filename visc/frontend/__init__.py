"""visc.frontend"""
