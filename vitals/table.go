package vitals

// MDC unit codes (IEEE 11073-10101 partition 4, MDC_DIM_*): 32-bit code = 4<<16 + term code.
// Checked against IHE PCD-01 sample messages and 11073-20601 agent nomenclature headers
// (e.g. MDC_DIM_PERCENT 544, MDC_DIM_BEAT_PER_MIN 2720, MDC_DIM_MMHG 3872, MDC_DIM_DEGC 6048).
var mdcUnits = []struct{ code, name, ucum string }{
	{"262688", "MDC_DIM_PERCENT", "%"},
	{"264864", "MDC_DIM_BEAT_PER_MIN", "/min"},
	{"264928", "MDC_DIM_RESP_PER_MIN", "/min"},
	{"266016", "MDC_DIM_MMHG", "mm[Hg]"},
	{"268192", "MDC_DIM_DEGC", "Cel"},
	{"266560", "MDC_DIM_FAHR", "[degF]"},
	{"263875", "MDC_DIM_KILO_G", "kg"},
	{"263872", "MDC_DIM_X_G", "g"},
	{"268352", "MDC_DIM_LB", "[lb_av]"},
	{"263424", "MDC_DIM_X_M", "m"},
	{"263441", "MDC_DIM_CENTI_M", "cm"},
	{"263442", "MDC_DIM_MILLI_M", "mm"},
	{"268704", "MDC_DIM_INCH", "[in_i]"},
	{"264096", "MDC_DIM_KG_PER_M_SQ", "kg/m2"},
	{"264274", "MDC_DIM_MILLI_G_PER_DL", "mg/dL"},
	{"266866", "MDC_DIM_MILLI_MOLE_PER_L", "mmol/L"},
}

// Units shared by several vital signs.
var (
	perMin = []Unit{
		{UCUM: "/min", MDC: "264864", Factor: 1},
		{UCUM: "{beats}/min", Factor: 1},
		{UCUM: "{breaths}/min", Factor: 1},
		{UCUM: "1/min", Factor: 1},
	}
	mmHg   = []Unit{{UCUM: "mm[Hg]", MDC: "266016", Factor: 1}}
	length = []Unit{
		{UCUM: "cm", MDC: "263441", Factor: 1},
		{UCUM: "m", MDC: "263424", Factor: 100},
		{UCUM: "mm", MDC: "263442", Factor: 0.1},
		{UCUM: "[in_i]", MDC: "268704", Factor: 2.54},
	}
)

// table is the vital-sign vocabulary. Ranges are plausible physiological limits (what a live
// patient could show, neonates to adults), not normal ranges.
var table = []Vital{
	{Name: "vital signs panel", LOINC: []string{"85353-1"}, Panel: true},
	{Name: "blood pressure panel", LOINC: []string{"85354-9", "55284-4"},
		MDC: []string{"150020", "150300", "150032"}, Panel: true}, // NONINV, ABP, ART
	{Name: "systolic blood pressure", LOINC: []string{"8480-6"},
		MDC: []string{"150021", "150301", "150033"}, Units: mmHg, Range: Range{40, 300, "mm[Hg]"}},
	{Name: "diastolic blood pressure", LOINC: []string{"8462-4"},
		MDC: []string{"150022", "150302", "150034"}, Units: mmHg, Range: Range{20, 200, "mm[Hg]"}},
	{Name: "mean blood pressure", LOINC: []string{"8478-0"},
		MDC: []string{"150023", "150303", "150035"}, Units: mmHg, Range: Range{25, 250, "mm[Hg]"}},
	{Name: "heart rate", LOINC: []string{"8867-4"},
		MDC: []string{"147842", "149522", "149546"}, Units: perMin, Range: Range{20, 300, "/min"}},
	{Name: "pulse rate by pulse oximetry", LOINC: []string{"8889-8"},
		MDC: []string{"149530"}, Units: perMin, Range: Range{20, 300, "/min"}},
	{Name: "respiratory rate", LOINC: []string{"9279-1"},
		MDC: []string{"151562"}, Units: perMin, Range: Range{2, 80, "/min"}},
	{Name: "oxygen saturation", LOINC: []string{"2708-6", "59408-5"},
		MDC: []string{"150456"}, Units: []Unit{{UCUM: "%", MDC: "262688", Factor: 1}}, Range: Range{50, 100, "%"}},
	// Body temperature: MDC_TEMP_BODY and MDC_TEMP first, then the measurement sites a
	// thermometer reports (IEEE 11073-10408 thermometer, partition SCADA = 2, so the code is
	// 2<<16 + term code): MDC_TEMP_ORAL 57352, MDC_TEMP_AXILLA 57380, MDC_TEMP_EAR 57356,
	// MDC_TEMP_TYMP 19320. All are stored as LOINC 8310-5 body temperature.
	{Name: "body temperature", LOINC: []string{"8310-5"},
		MDC: []string{"150364", "150344", "188424", "188452", "188428", "150392"}, Units: []Unit{
			{UCUM: "Cel", MDC: "268192", Factor: 1},
			{UCUM: "[degF]", MDC: "266560", Factor: 5.0 / 9, Offset: -32 * 5.0 / 9},
		}, Range: Range{25, 45, "Cel"}},
	{Name: "body height", LOINC: []string{"8302-2"},
		MDC: []string{"188740"}, Units: length, Range: Range{20, 280, "cm"}},
	{Name: "head circumference", LOINC: []string{"9843-4", "8287-5"},
		Units: length, Range: Range{20, 80, "cm"}},
	{Name: "body weight", LOINC: []string{"29463-7", "3141-9"},
		MDC: []string{"188736"}, Units: []Unit{
			{UCUM: "kg", MDC: "263875", Factor: 1},
			{UCUM: "g", MDC: "263872", Factor: 0.001},
			{UCUM: "[lb_av]", MDC: "268352", Factor: 0.45359237},
		}, Range: Range{0.3, 500, "kg"}},
	{Name: "body mass index", LOINC: []string{"39156-5"},
		MDC: []string{"188752"}, Units: []Unit{{UCUM: "kg/m2", MDC: "264096", Factor: 1}}, Range: Range{5, 100, "kg/m2"}},
	// One entry for blood glucose whatever the property (mass or substance concentration):
	// devices report either unit; 1 mmol/L of glucose (180.156 g/mol) is 18.0156 mg/dL.
	{Name: "blood glucose", LOINC: []string{"2339-0", "15074-8", "41653-7"},
		MDC: []string{"160184"}, Units: []Unit{
			{UCUM: "mg/dL", MDC: "264274", Factor: 1},
			{UCUM: "mmol/L", MDC: "266866", Factor: 18.0156},
		}, Range: Range{10, 1000, "mg/dL"}},
}

// Indexes into table, built once.
var byLOINC, byMDC = index()

func index() (map[string]int, map[string]int) {
	l, m := map[string]int{}, map[string]int{}
	for i, v := range table {
		for _, c := range v.LOINC {
			l[c] = i
		}
		for _, c := range v.MDC {
			m[c] = i
		}
	}
	return l, m
}
