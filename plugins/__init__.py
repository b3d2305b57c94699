"""built-in plugins"""
