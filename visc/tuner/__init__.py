"""visc.tuner"""
