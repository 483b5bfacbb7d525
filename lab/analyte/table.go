package analyte

// Conversion factors between mass and substance concentration use the molar masses:
// glucose 180.156 g/mol (1 mmol/L = 18.0156 mg/dL, as package vitals), lactate 90.08 g/mol
// (1 mg/dL = 0.11101 mmol/L), calcium 40.078 g/mol (1 mg/dL = 0.24951 mmol/L; 1 meq/L =
// 0.5 mmol/L), creatinine 113.12 g/mol (1 umol/L = 0.011312 mg/dL), urea nitrogen 28.014
// g/mol per urea (1 mmol/L urea = 2.8014 mg/dL BUN), hemoglobin (Fe) 16.114 g/mmol
// (1 mmol/L = 1.6114 g/dL). 1 kPa = 7.50062 mm[Hg].

var (
	pressure = []Unit{{"mm[Hg]", 1}, {"kPa", 7.50062}}
	monoIon  = []Unit{{"mmol/L", 1}, {"meq/L", 1}}
	troponin = []Unit{{"ng/L", 1}, {"pg/mL", 1}, {"ng/mL", 1000}, {"ug/L", 1000}}
)

// table is the analyte vocabulary. Ranges are plausible physiological limits (what a live
// patient could show, neonates to adults, in critical illness), not reference ranges.
var table = []Analyte{
	// One entry for glucose whatever the specimen or property, as in package vitals (whose
	// codes 2339-0, 15074-8 and 41653-7 are repeated here with the same units and range).
	{Name: "glucose", LOINC: []string{"2339-0", "2345-7", "15074-8", "14749-6", "41653-7", "14743-9", "32016-8", "2340-8"},
		Dimension: "mass or substance concentration", Units: []Unit{{"mg/dL", 1}, {"mmol/L", 18.0156}}, Low: 10, High: 1000},
	{Name: "lactate", LOINC: []string{"2524-7", "32693-4", "2518-9"},
		Dimension: "substance concentration", Units: []Unit{{"mmol/L", 1}, {"mg/dL", 0.11101}}, Low: 0.1, High: 30},
	{Name: "pH", LOINC: []string{"2744-1", "2746-6", "11558-4"},
		Dimension: "pH", Units: []Unit{{"[pH]", 1}}, Unitless: true, Low: 6.5, High: 8.0},
	{Name: "carbon dioxide partial pressure", LOINC: []string{"2019-8", "2021-4", "11557-6"},
		Dimension: "partial pressure", Units: pressure, Low: 5, High: 200},
	{Name: "oxygen partial pressure", LOINC: []string{"2703-7", "2705-2", "11556-8"},
		Dimension: "partial pressure", Units: pressure, Low: 10, High: 800},
	{Name: "sodium", LOINC: []string{"2951-2", "2947-0"},
		Dimension: "substance concentration", Units: monoIon, Low: 80, High: 200},
	{Name: "potassium", LOINC: []string{"2823-3", "6298-4"},
		Dimension: "substance concentration", Units: monoIon, Low: 1, High: 12},
	{Name: "chloride", LOINC: []string{"2075-0", "2069-3"},
		Dimension: "substance concentration", Units: monoIon, Low: 50, High: 160},
	{Name: "ionized calcium", LOINC: []string{"1994-3", "1995-0"},
		Dimension: "substance concentration", Units: []Unit{{"mmol/L", 1}, {"mg/dL", 0.24951}, {"meq/L", 0.5}}, Low: 0.2, High: 4},
	{Name: "bicarbonate", LOINC: []string{"1959-6", "1960-4", "1963-8", "14627-4"},
		Dimension: "substance concentration", Units: monoIon, Low: 1, High: 70},
	{Name: "base excess", LOINC: []string{"11555-0", "1925-7"},
		Dimension: "substance concentration", Units: monoIon, Low: -40, High: 40},
	{Name: "hemoglobin", LOINC: []string{"718-7", "30313-1"},
		Dimension: "mass concentration", Units: []Unit{{"g/dL", 1}, {"g/L", 0.1}, {"mmol/L", 1.6114}}, Low: 1, High: 25},
	{Name: "hematocrit", LOINC: []string{"4544-3", "20570-8", "31100-1"},
		Dimension: "volume fraction", Units: []Unit{{"%", 1}, {"L/L", 100}}, Low: 5, High: 80},
	{Name: "INR", LOINC: []string{"34714-6", "6301-6"},
		Dimension: "ratio", Units: []Unit{{"{INR}", 1}, {"1", 1}, {"{ratio}", 1}}, Unitless: true, Low: 0.5, High: 20},
	{Name: "prothrombin time", LOINC: []string{"5902-2", "5964-2"},
		Dimension: "time", Units: []Unit{{"s", 1}}, Low: 5, High: 200},
	{Name: "troponin I", LOINC: []string{"10839-9", "42757-5", "89579-7"},
		Dimension: "mass concentration", Units: troponin, Low: 0, High: 1e6},
	{Name: "troponin T", LOINC: []string{"6598-7", "67151-1"},
		Dimension: "mass concentration", Units: troponin, Low: 0, High: 1e6},
	{Name: "creatinine", LOINC: []string{"2160-0", "38483-4"},
		Dimension: "mass concentration", Units: []Unit{{"mg/dL", 1}, {"umol/L", 0.011312}, {"mmol/L", 11.312}}, Low: 0.05, High: 40},
	{Name: "urea nitrogen", LOINC: []string{"3094-0", "6299-2"},
		Dimension: "mass concentration", Units: []Unit{{"mg/dL", 1}, {"mmol/L", 2.8014}}, Low: 1, High: 300},
	// Arterial oxygen saturation shares LOINC 2708-6 with package vitals (pulse oximetry):
	// same unit and range.
	{Name: "arterial oxygen saturation", LOINC: []string{"2708-6"},
		Dimension: "saturation fraction", Units: []Unit{{"%", 1}}, Low: 50, High: 100},
	{Name: "oxygen saturation (venous or calculated)", LOINC: []string{"2711-0", "2713-6"},
		Dimension: "saturation fraction", Units: []Unit{{"%", 1}}, Low: 5, High: 100},
}

// aliases are the non-UCUM spellings of units that analyzers commonly send in OBX-6, with
// the UCUM code each stands for.
var aliases = map[string]string{
	"mmHg": "mm[Hg]", "mm Hg": "mm[Hg]", "kpa": "kPa",
	"mEq/L": "meq/L", "mEq/l": "meq/L", "meq/l": "meq/L",
	"mg/dl": "mg/dL", "g/dl": "g/dL", "g/l": "g/L",
	"mmol/l": "mmol/L", "umol/l": "umol/L", "µmol/L": "umol/L", "μmol/L": "umol/L", "µmol/l": "umol/L",
	"ng/ml": "ng/mL", "pg/ml": "pg/mL", "ug/l": "ug/L", "µg/L": "ug/L", "ng/l": "ng/L",
	"l/l": "L/L", "sec": "s", "pH": "[pH]", "INR": "{INR}", "ratio": "{ratio}",
	"ml": "mL", "dl": "dL", "l": "L", "mg/l": "mg/L", "u/l": "U/L", "IU/L": "[IU]/L", "IU/mL": "[IU]/mL",
	"IU/ml": "[IU]/mL",
}

// generalUCUM are UCUM units of results outside the table that NormalizeUnit also knows
// (for analytes a caller accepts without a table entry).
var generalUCUM = []string{
	"g", "mg", "ug", "kg", "L", "mL", "dL", "s", "min", "h", "d", "/min", "/h",
	"U/L", "[IU]/L", "[IU]/mL", "m[IU]/L", "10*3/uL", "10*6/uL", "10*9/L", "10*12/L", "/uL",
	"fL", "pg", "mm/h", "mg/L", "ug/mL", "ug/dL", "ng/dL", "umol/L", "nmol/L", "pmol/L", "mol/L",
	"g/L", "g/dL", "mg/dL", "mmol/L", "%", "1", "{ratio}", "mosm/kg", "mm[Hg]", "kPa", "Cel",
}

// Indexes built once.
var byLOINC, knownUCUM = index()

func index() (map[string]int, map[string]bool) {
	l, u := map[string]int{}, map[string]bool{}
	for _, x := range generalUCUM {
		u[x] = true
	}
	for i, a := range table {
		for _, c := range a.LOINC {
			l[c] = i
		}
		for _, x := range a.Units {
			u[x.UCUM] = true
		}
	}
	return l, u
}
