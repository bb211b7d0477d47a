"""visc.backends"""
