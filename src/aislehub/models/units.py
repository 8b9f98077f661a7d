"""Semantic types and their units, as tables.

``V2`` is the table of DTDL v2 §Semantic Type (built into the language). ``QUANTITATIVE_V1`` is
the table of the QuantitativeTypes v1 extension (``dtmi:dtdl:extension:quantitativeTypes;1``),
the only way to use semantic types in DTDL v3 (v3 §Changes from Version 2).
"""

# ruff: noqa: E501  (unit lists read best one semantic type per line, as in the spec tables)
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SemanticTable:
    semantic_to_unit_type: Mapping[str, str]
    unit_type_units: Mapping[str, frozenset[str]]

    def units_for(self, semantic_type: str) -> frozenset[str]:
        return self.unit_type_units[self.semantic_to_unit_type[semantic_type]]


def _units(spec: Mapping[str, str]) -> dict[str, frozenset[str]]:
    return {unit_type: frozenset(units.split()) for unit_type, units in spec.items()}


_ANGLE = "degreeOfArc minuteOfArc radian secondOfArc turn"
_LENGTH = "astronomicalUnit centimetre foot inch kilometre metre micrometre mile millimetre nanometre nauticalMile"
_DATA_RATE = " ".join(
    f"{prefix}{unit}PerSecond"
    for prefix in ("", "exbi", "gibi", "kibi", "mebi", "tebi", "yobi", "zebi")
    for unit in ("bit", "byte")
)
_DATA_SIZE = "bit byte exbibit exbibyte gibibit gibibyte kibibit kibibyte mebibit mebibyte tebibit tebibyte yobibit yobibyte zebibit zebibyte"

_V2_UNITS = {
    "AccelerationUnit": "centimetrePerSecondSquared gForce metrePerSecondSquared",
    "AngleUnit": _ANGLE,
    "AngularAccelerationUnit": "radianPerSecondSquared",
    "AngularVelocityUnit": "degreePerSecond radianPerSecond revolutionPerMinute revolutionPerSecond",
    "AreaUnit": "acre hectare squareCentimetre squareFoot squareInch squareKilometre squareMetre squareMillimetre",
    "CapacitanceUnit": "farad microfarad millifarad nanofarad picofarad",
    "CurrentUnit": "ampere microampere milliampere",
    "DataRateUnit": _DATA_RATE,
    "DataSizeUnit": _DATA_SIZE,
    "DensityUnit": "gramPerCubicMetre kilogramPerCubicMetre",
    "LengthUnit": _LENGTH,
    "ChargeUnit": "coulomb",
    "EnergyUnit": "electronvolt gigajoule joule kilojoule kilowattHour megaelectronvolt megajoule",
    "ForceUnit": "newton ounce pound ton",
    "FrequencyUnit": "gigahertz hertz kilohertz megahertz",
    "IlluminanceUnit": "footcandle lux",
    "InductanceUnit": "henry microhenry millihenry",
    "LuminanceUnit": "candelaPerSquareMetre",
    "PowerUnit": "gigawatt horsepower kilowatt kilowattHourPerYear megawatt microwatt milliwatt watt",
    "LuminousFluxUnit": "lumen",
    "LuminousIntensityUnit": "candela",
    "MagneticFluxUnit": "maxwell weber",
    "MagneticInductionUnit": "tesla",
    "MassUnit": "gram kilogram microgram milligram slug tonne",
    "MassFlowRateUnit": "gramPerHour gramPerSecond kilogramPerHour kilogramPerSecond",
    "PressureUnit": "bar inchesOfMercury inchesOfWater kilopascal millibar millimetresOfMercury pascal poundPerSquareInch",
    "Unitless": "percent unity",
    "ResistanceUnit": "kiloohm megaohm milliohm ohm",
    "SoundPressureUnit": "bel decibel",
    "TemperatureUnit": "degreeCelsius degreeFahrenheit kelvin",
    "TimeUnit": "day hour microsecond millisecond minute nanosecond second year",
    "TorqueUnit": "newtonMetre",
    "VelocityUnit": "centimetrePerSecond kilometrePerHour kilometrePerSecond knot metrePerHour metrePerSecond milePerHour milePerSecond",
    "VoltageUnit": "kilovolt megavolt microvolt millivolt volt",
    "VolumeUnit": "cubicCentimetre cubicFoot cubicInch cubicMetre fluidOunce gallon litre millilitre",
    "VolumeFlowRateUnit": "litrePerHour litrePerSecond millilitrePerHour millilitrePerSecond",
}

_V2_SEMANTIC = {
    "Acceleration": "AccelerationUnit",
    "Angle": "AngleUnit",
    "AngularAcceleration": "AngularAccelerationUnit",
    "AngularVelocity": "AngularVelocityUnit",
    "Area": "AreaUnit",
    "Capacitance": "CapacitanceUnit",
    "Current": "CurrentUnit",
    "DataRate": "DataRateUnit",
    "DataSize": "DataSizeUnit",
    "Density": "DensityUnit",
    "Distance": "LengthUnit",
    "ElectricCharge": "ChargeUnit",
    "Energy": "EnergyUnit",
    "Force": "ForceUnit",
    "Frequency": "FrequencyUnit",
    "Humidity": "DensityUnit",
    "Illuminance": "IlluminanceUnit",
    "Inductance": "InductanceUnit",
    "Latitude": "AngleUnit",
    "Length": "LengthUnit",
    "Longitude": "AngleUnit",
    "Luminance": "LuminanceUnit",
    "Luminosity": "PowerUnit",
    "LuminousFlux": "LuminousFluxUnit",
    "LuminousIntensity": "LuminousIntensityUnit",
    "MagneticFlux": "MagneticFluxUnit",
    "MagneticInduction": "MagneticInductionUnit",
    "Mass": "MassUnit",
    "MassFlowRate": "MassFlowRateUnit",
    "Power": "PowerUnit",
    "Pressure": "PressureUnit",
    "RelativeHumidity": "Unitless",
    "Resistance": "ResistanceUnit",
    "SoundPressure": "SoundPressureUnit",
    "Temperature": "TemperatureUnit",
    "Thrust": "ForceUnit",
    "TimeSpan": "TimeUnit",
    "Torque": "TorqueUnit",
    "Velocity": "VelocityUnit",
    "Voltage": "VoltageUnit",
    "Volume": "VolumeUnit",
    "VolumeFlowRate": "VolumeFlowRateUnit",
}

_POWER_QT = "britishThermalUnitPerHour gigajoulePerHour gigawatt horsepower joulePerHour joulePerSecond kiloBritishThermalUnitPerHour kilojoulePerHour kilojoulePerSecond kilowatt kilowattHourPerYear megajoulePerHour megawatt microwatt milliwatt tonOfRefrigeration watt"
_UNITLESS_QT = "partsPerBillion partsPerMillion partsPerQuadrillion partsPerTrillion percent unity"
_DENSITY_QT = (
    "gramPerCubicMetre kilogramPerCubicMetre microgramPerCubicMetre milligramPerCubicMetre"
)

# QuantitativeTypes v1 §Semantic types and units: v2's table, grown.
_QT_UNITS = _V2_UNITS | {
    "ApparentEnergyUnit": "gigavoltAmpereHour kilovoltAmpereHour megavoltAmpereHour voltAmpereHour",
    "ApparentPowerUnit": "gigavoltAmpere kilovoltAmpere megavoltAmpere millivoltAmpere voltAmpere",
    "Unitless": _UNITLESS_QT,
    "CurrentUnit": "ampere kiloampere microampere milliampere",
    "DensityUnit": _DENSITY_QT,
    "ChargeUnit": "ampereHour coulomb milliampereHour",
    "EnergyUnit": "britishThermalUnit electronvolt gigajoule gigawattHour joule kiloBritishThermalUnit kilojoule kilowattHour megaelectronvolt megajoule megawattHour milliwattHour terawattHour wattHour",
    "PowerUnit": _POWER_QT,
    "FrequencyUnit": "gigahertz hertz kilohertz megahertz millihertz",
    "IonizingRadiationDoseUnit": "gray microgray microsievert milligray millisievert sievert",
    "IrradianceUnit": "wattPerSquareMetre",
    "MagneticInductionUnit": "gauss tesla",
    "MassUnit": "gram kilogram massPound microgram milligram slug tonne",
    "MassFlowRateUnit": "gramPerHour gramPerSecond kilogramPerHour kilogramPerSecond massPoundPerHour",
    "PressureUnit": "bar decapascal hectopascal inchesOfMercury inchesOfWater kilopascal millibar millimetresOfMercury pascal poundPerSquareInch",
    "RadioactivityUnit": "becquerel gigabecquerel kilobecquerel megabecquerel",
    "ReactiveEnergyUnit": "gigavoltAmpereReactiveHour kilovoltAmpereReactiveHour megavoltAmpereReactiveHour voltAmpereReactiveHour",
    "ReactivePowerUnit": "gigavoltAmpereReactive kilovoltAmpereReactive megavoltAmpereReactive millivoltAmpereReactive voltAmpereReactive",
    "VolumeFlowRateUnit": "cubicFootPerMinute cubicMetrePerHour cubicMetrePerMinute cubicMetrePerSecond gallonPerHour gallonPerMinute litrePerHour litrePerMinute litrePerSecond millilitrePerHour millilitrePerMinute millilitrePerSecond",
}

_QT_SEMANTIC = _V2_SEMANTIC | {
    "ApparentEnergy": "ApparentEnergyUnit",
    "ApparentPower": "ApparentPowerUnit",
    "Concentration": "Unitless",
    "EnergyRate": "PowerUnit",
    "IonizingRadiationDose": "IonizingRadiationDoseUnit",
    "Irradiance": "IrradianceUnit",
    "Radioactivity": "RadioactivityUnit",
    "ReactiveEnergy": "ReactiveEnergyUnit",
    "ReactivePower": "ReactivePowerUnit",
    "RelativeDensity": "Unitless",
}

V2 = SemanticTable(_V2_SEMANTIC, _units(_V2_UNITS))
QUANTITATIVE_V1 = SemanticTable(_QT_SEMANTIC, _units(_QT_UNITS))
