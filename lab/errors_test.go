package lab_test

import (
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/lab"
	"github.com/vitalgate/vitalgate/pcd01"
)

const (
	bloodGas = "10_spec_poc_blood_gas_oru_r01.hl7"
	meter    = "11_spec_glucose_meter_oru_r01.hl7"
	law      = "12_spec_law_oul_r22_spm.hl7"
)

// mutate returns the message in file with old replaced by new (once), failing when old is
// not in it: a mutation that no longer applies must not pass silently.
func mutate(tb testing.TB, file, old, new string) []byte {
	tb.Helper()
	s := string(mustRead(tb, file))
	if !strings.Contains(s, old) {
		tb.Fatalf("%s does not contain %q", file, old)
	}
	return []byte(strings.Replace(s, old, new, 1))
}

// TestMutations: copies of the samples with one thing wrong each, and the error code, HL7
// condition, field and ACK code each must get.
func TestMutations(t *testing.T) {
	tests := []struct {
		name, file, old, new string
		code, cond, field    string
		ack                  string
	}{
		// Units.
		{"unit not UCUM", meter, "63|mg/dL^mg/dL^UCUM", "63|mg/kg^mg/kg^UCUM", vitalgate.EUNPROCESSABLE, "103", "OBX-6.1", "AE"},
		{"unit of another dimension", bloodGas, "4.1|mmol/L^mmol/L^UCUM", "4.1|mg/dL^mg/dL^UCUM", vitalgate.EUNPROCESSABLE, "103", "OBX[8]-6.1", "AE"},
		{"pressure in percent", bloodGas, "52|mm[Hg]^mmHg^UCUM", "52|%^%^UCUM", vitalgate.EUNPROCESSABLE, "103", "OBX[2]-6.1", "AE"},
		{"unit missing", bloodGas, "4.1|mmol/L^mmol/L^UCUM", "4.1|", vitalgate.EINVALID, "101", "OBX[8]-6.1", "AE"},
		// Analytes.
		{"unknown LOINC analyte", meter, "OBX|1|NM|41653-7", "OBX|1|NM|12345-6", vitalgate.EUNPROCESSABLE, "103", "OBX-3.1", "AE"},
		{"local code without LOINC", meter, "OBX|1|NM|41653-7^Glucose [Mass/volume] in Capillary blood by Glucometer^LN", "OBX|1|NM|GLU^Glucose^L", vitalgate.EUNPROCESSABLE, "103", "OBX-3.3", "AE"},
		{"malformed LOINC", meter, "OBX|1|NM|41653-7", "OBX|1|NM|41653", vitalgate.EINVALID, "102", "OBX-3.1", "AE"},
		{"text value for a quantitative analyte", meter, "OBX|1|NM|", "OBX|1|ST|", vitalgate.EUNPROCESSABLE, "102", "OBX-2", "AE"},
		{"unsupported value type", law, "OBX|1|NM|2160-0", "OBX|1|ZZ|2160-0", vitalgate.EUNPROCESSABLE, "102", "OBX-2", "AE"},
		// Patient.
		{"PID-3 missing", meter, "PID|1||MRN-40022^^^General Hospital^MR|", "PID|1|||", vitalgate.EINVALID, "101", "PID-3.1", "AE"},
		{"PID missing", law, "PID|1||MRN-40023^^^General Hospital^MR||Roe^Richard^^^^^L||19550505|M\r", "", vitalgate.EINVALID, "100", "PID", "AE"},
		// Values.
		{"glucose out of range", meter, "||63|", "||1500|", vitalgate.EUNPROCESSABLE, "102", "OBX-5", "AE"},
		{"pH out of range", bloodGas, "||7.31||", "||9.1||", vitalgate.EUNPROCESSABLE, "102", "OBX-5", "AE"},
		{"pO2 out of range in kPa", bloodGas, "||9.8|kPa", "||150|kPa", vitalgate.EUNPROCESSABLE, "102", "OBX[3]-5", "AE"},
		{"negative potassium", bloodGas, "||4.1|", "||-4.1|", vitalgate.EUNPROCESSABLE, "102", "OBX[8]-5", "AE"},
		{"value not a number", meter, "||63|", "||6,3|", vitalgate.EINVALID, "102", "OBX-5", "AE"},
		{"value missing", meter, "||63|", "|||", vitalgate.EINVALID, "101", "OBX-5", "AE"},
		{"range in a single-number result", law, "||4.6|", "||^4^-^5|", vitalgate.EINVALID, "102", "OBX[2]-5", "AE"},
		// Status and flags.
		{"result status missing", meter, "|70-140|L|||F|", "|70-140|L||||", vitalgate.EINVALID, "101", "OBX-11", "AE"},
		{"result status not in table 0085", meter, "|70-140|L|||F|", "|70-140|L|||Z|", vitalgate.EUNPROCESSABLE, "103", "OBX-11", "AE"},
		{"abnormal flag not in table 0078", meter, "|70-140|L|", "|70-140|ZZ|", vitalgate.EUNPROCESSABLE, "103", "OBX-8", "AE"},
		{"report status not in table 0123", meter, "20261201151300+0100||||||||||||||||||F", "20261201151300+0100||||||||||||||||||Q", vitalgate.EUNPROCESSABLE, "103", "OBR-25", "AE"},
		// Times.
		{"malformed observation time", meter, "|F|||20261201151300+0100|", "|F|||20261341151300+0100|", vitalgate.EINVALID, "102", "OBX-14", "AE"},
		{"observation time in the future", meter, "|F|||20261201151300+0100|", "|F|||20271201151300+0100|", vitalgate.EUNPROCESSABLE, "102", "OBX-14", "AE"},
		{"collection ends before it starts", law, "|20261201071500+0100|", "|20261201071500+0100^20261201061500+0100|", vitalgate.EUNPROCESSABLE, "102", "SPM-17.2", "AE"},
		// Orders.
		{"order number missing", meter, "OBR|1||GM0421-000187-1^GM-0421|", "OBR|1|||", vitalgate.EINVALID, "101", "OBR-3.1", "AE"},
		{"universal service id missing", meter, "|GM0421-000187-1^GM-0421|41653-7^Glucose [Mass/volume] in Capillary blood by Glucometer^LN|", "|GM0421-000187-1^GM-0421||", vitalgate.EINVALID, "101", "OBR-4.1", "AE"},
		// Header.
		{"not a result message", meter, "ORU^R01^ORU_R01", "ADT^A01^ADT_A01", vitalgate.EINVALID, "200", "MSH-9.1", "AR"},
		{"wrong trigger event", law, "OUL^R22^OUL_R22", "OUL^R21^OUL_R21", vitalgate.EINVALID, "201", "MSH-9.2", "AR"},
		{"unsupported version", meter, "|P|2.6|", "|P|2.3|", vitalgate.EINVALID, "203", "MSH-12", "AR"},
		{"debug processing id", meter, "|P|2.6|", "|D|2.6|", vitalgate.EINVALID, "202", "MSH-11", "AR"},
		{"message control id missing", meter, "|GM0421-000187|", "||", vitalgate.EINVALID, "101", "MSH-10", "AE"},
		// Malformed segments.
		{"truncated OBX", meter, "OBX|1|NM|41653-7", "OBX|1\rOBX|2|NM|41653-7", vitalgate.EINVALID, "101", "OBX-11", "AE"},
		{"segment id not valid", meter, "\rOBX|1|", "\rOB!|1|", vitalgate.EINVALID, "100", "", "AR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := hl7v2.Parse(mutate(t, tt.file, tt.old, tt.new), hl7v2.Limits{})
			if err == nil {
				_, err = lab.Map(msg, options())
			}
			if err == nil {
				t.Fatal("no error")
			}
			if got := vitalgate.ErrorCode(err); got != tt.code {
				t.Errorf("code %s, want %s (%v)", got, tt.code, err)
			}
			if got := hl7v2.ErrorCondition(err); got != tt.cond {
				t.Errorf("condition %s, want %s (%v)", got, tt.cond, err)
			}
			if got := vitalgate.ErrorField(err); got != tt.field {
				t.Errorf("field %q, want %q (%v)", got, tt.field, err)
			}
			if l, ok := hl7v2.ErrorLocation(err); !ok || l.String() != tt.field {
				t.Errorf("location %q, want %q", l.String(), tt.field)
			}
			if ack, cond := pcd01.AckCodeFor(err); ack != tt.ack || cond != tt.cond {
				t.Errorf("ACK %s %s, want %s %s", ack, cond, tt.ack, tt.cond)
			}
		})
	}
}

// TestUnitsConverted: a unit the analyte accepts in another dimension or spelling maps, the
// value kept as measured, with its UCUM code.
func TestUnitsConverted(t *testing.T) {
	tests := []struct {
		name, file, old, new string
		value, unit          string
		cmp                  string
	}{
		{"glucose in mmol/L", meter, "63|mg/dL^mg/dL^UCUM", "3.5|mmol/L^mmol/L^UCUM", "3.5", "mmol/L", ""},
		{"mmHg written the usual way", bloodGas, "52|mm[Hg]^mmHg^UCUM", "52|mmHg", "52", "mm[Hg]", ""},
		{"sodium in mEq/L", bloodGas, "138|mmol/L^mmol/L^UCUM", "138|mEq/L", "138", "meq/L", ""},
		{"creatinine in mg/dL", law, "88|umol/L^umol/L^UCUM", "1.0|mg/dL^mg/dL^UCUM", "1.0", "mg/dL", ""},
		{"troponin in ng/mL", law, "27|ng/L^ng/L^UCUM", "0.027|ng/mL", "0.027", "ng/mL", ""},
		{"troponin below the limit of quantitation", law,
			"OBX|1|NM|89579-7^Troponin I.cardiac [Mass/volume] in Serum or Plasma by High sensitivity method^LN||27|",
			"OBX|1|SN|89579-7^Troponin I.cardiac [Mass/volume] in Serum or Plasma by High sensitivity method^LN||<^5|", "5", "ng/L", "<"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := lab.Map(mustParse(t, mutate(t, tt.file, tt.old, tt.new)), options())
			if err != nil {
				t.Fatalf("Map: %v at %s", err, vitalgate.ErrorField(err))
			}
			checkResources(t, res)
			var found bool
			for _, o := range res.Observations() {
				if q := o.ValueQuantity; q != nil && q.Value.String() == tt.value && q.Code == tt.unit && q.Comparator == tt.cmp {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s %s among the results", tt.value, tt.unit)
			}
		})
	}
}

func TestMaxObservations(t *testing.T) {
	opt := options()
	opt.MaxObservations = 3
	_, err := lab.Map(mustParse(t, mustRead(t, bloodGas)), opt)
	if vitalgate.ErrorCode(err) != vitalgate.ETOOLARGE || vitalgate.ErrorField(err) != "OBX[4]" {
		t.Fatalf("err = %v at %s", err, vitalgate.ErrorField(err))
	}
	if ack, _ := pcd01.AckCodeFor(err); ack != "AR" {
		t.Errorf("ACK %s", ack)
	}
}

func TestOptionsRequired(t *testing.T) {
	msg := mustParse(t, mustRead(t, meter))
	for _, opt := range []lab.Options{{}, {DeviceID: "dev-1"}, {DeviceID: "not a fhir id", ResolvePatient: options().ResolvePatient}} {
		if _, err := lab.Map(msg, opt); vitalgate.ErrorCode(err) != vitalgate.EINTERNAL {
			t.Errorf("%+v: err = %v", opt, err)
		}
	}
}

// TestEquipment: the instruments of OBX-18 and of a PRT segment (participation EQUIP, the
// form IHE LAW pre-adopts from v2.7) that follows an OBX are the entry's equipment.
func TestEquipment(t *testing.T) {
	prt := "PRT||UC||EQUIP^Equipment^HL70912||||||C3-SN-2000^ANALYZER-C3~C3-SN-1107^ANALYZER-C3\r"
	b := mutate(t, law, "OBR|2|", prt+"OBR|2|")
	res, err := lab.Map(mustParse(t, b), options())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, q := range res.Results[0].Equipment {
		got = append(got, q.System+"|"+q.Value)
	}
	want := []string{"urn:vitalgate:hl7-authority:ANALYZER-C3|C3-SN-1107", "urn:vitalgate:hl7-authority:ANALYZER-C3|C3-SN-2000"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("equipment %v, want %v", got, want)
	}
	if n := len(res.Results[1].Equipment); n != 1 {
		t.Errorf("second result has %d instruments", n)
	}
	// A PRT of another participation names no instrument.
	b = mutate(t, law, "OBR|2|", strings.Replace(prt, "EQUIP^Equipment", "RO^Responsible observer", 1)+"OBR|2|")
	if res, err = lab.Map(mustParse(t, b), options()); err != nil {
		t.Fatal(err)
	}
	if n := len(res.Results[0].Equipment); n != 1 {
		t.Errorf("a responsible-observer PRT added equipment: %v", res.Results[0].Equipment)
	}
}

// TestVersions: ORU^R01 and OUL^R22 map in v2.5.1 and v2.6; other versions are refused
// unless Options.Versions lists them.
func TestVersions(t *testing.T) {
	tests := []struct {
		file, version string
		ok            bool
	}{
		{meter, "2.5.1", true}, {meter, "2.6", true}, {law, "2.5.1", true}, {law, "2.6", true},
		{meter, "2.5", false}, {law, "2.7", false},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.version, func(t *testing.T) {
			s := string(mustRead(t, tt.file))
			for _, v := range []string{"|P|2.6|", "|P|2.5.1|"} {
				s = strings.Replace(s, v, "|P|"+tt.version+"|", 1)
			}
			msg := mustParse(t, []byte(s))
			if got := msg.Segment("MSH").Field(12).Value(); got != tt.version {
				t.Fatalf("MSH-12 %q", got)
			}
			_, err := lab.Map(msg, options())
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
			if !tt.ok {
				opt := options()
				opt.Versions = []string{tt.version}
				if _, err := lab.Map(msg, opt); err != nil {
					t.Errorf("with Versions %s: %v", tt.version, err)
				}
			}
		})
	}
}

// TestACKFromError: a mapping error becomes an ACK with MSA AE and an ERR segment naming the
// field (ERR-2) and the condition (ERR-3), as mllp builds it for PCD-01.
func TestACKFromError(t *testing.T) {
	msg := mustParse(t, mutate(t, bloodGas, "4.1|mmol/L^mmol/L^UCUM", "4.1|mg/dL^mg/dL^UCUM"))
	_, err := lab.Map(msg, options())
	code, cond := pcd01.AckCodeFor(err)
	ae := hl7v2.AckErrorFrom(err)
	if ae.Condition == "" {
		ae.Condition = cond
	}
	ack := mustParse(t, hl7v2.BuildACK(msg, code, []hl7v2.AckError{ae}, now, "ack-1"))
	if got := ack.Segment("MSA").Field(1).Value(); got != "AE" {
		t.Errorf("MSA-1 %q", got)
	}
	e := ack.Segment("ERR")
	if got := e.Field(2).Rep(1); got.Comp(1).Value() != "OBX" || got.Comp(2).Value() != "8" || got.Comp(3).Value() != "6" {
		t.Errorf("ERR-2 %v", got)
	}
	if got := e.Field(3).Value(); got != "103" {
		t.Errorf("ERR-3 %q", got)
	}
	if got := e.Field(8).Value(); !strings.Contains(got, "potassium") || strings.Contains(got, "4.1") {
		t.Errorf("ERR-8 %q: names the analyte, never the value", got)
	}
}

// TestOrderKeyFallback: without a filler order number the key is the placer order number
// (OBR-2), and in an OUL without either the specimen id (SPM-2).
func TestOrderKeyFallback(t *testing.T) {
	tests := []struct {
		name, file, old, new string
		key, typ             string
	}{
		{"placer order number", meter, "OBR|1||GM0421-000187-1^GM-0421|", "OBR|1|P-77^WARD-5||",
			"urn:vitalgate:hl7-authority:WARD-5|P-77", "PLAC"},
		{"specimen id", law, "OBR|1|ORD-55120^LIS|AWOS-77812-1^ANALYZER-C3|", "OBR|1|||",
			"urn:vitalgate:hl7-authority:LIS|S-0091833", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := lab.Map(mustParse(t, mutate(t, tt.file, tt.old, tt.new)), options())
			if err != nil {
				t.Fatalf("%v at %s", err, vitalgate.ErrorField(err))
			}
			checkResources(t, res)
			id := res.Reports[0].Identifier
			if got := id[0].System + "|" + id[0].Value; got != tt.key || len(id) != 1 {
				t.Errorf("report identifiers %+v, want %s", id, tt.key)
			}
			var typ string
			if id[0].Type != nil {
				typ = id[0].Type.Coding[0].Code
			}
			if typ != tt.typ {
				t.Errorf("identifier type %q, want %q", typ, tt.typ)
			}
			if k := res.Results[0].Key; !strings.HasPrefix(k.System+"|"+k.Value, tt.key+"/") {
				t.Errorf("result key %+v", k)
			}
		})
	}
}
