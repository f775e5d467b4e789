"""Measured spectra: file readers (JCAMP-DX, text), the measured IR set, baseline and frequency
calibration, measured spectra as model data."""
