"""visc.tools"""
