package fhir

import "sort"

// kind is the JSON shape an element must have.
type kind uint8

const (
	kString  kind = iota // a JSON string (FHIR string, code, uri, id, dateTime, instant, xhtml...)
	kDecimal             // a JSON number
	kInteger             // a JSON number without fraction or exponent, within int32
	kBool                // true or false
	kObject              // a JSON object of the datatype named by elem.typ
)

// elem describes one allowed element of a datatype.
type elem struct {
	kind   kind
	array  bool   // a JSON array of kind (FHIR cardinality 0..*)
	typ    string // for kObject: the schema name of the nested datatype
	choice string // for choice elements (value[x], effective[x]): at most one per object
}

// schema is the set of allowed elements per datatype (case-sensitive). Elements not listed
// here are rejected by the strict decoder. Datatypes used inside resources are shared, so
// adding an element to a datatype adds it everywhere.
var schema = map[string]map[string]elem{
	"Observation": {
		"resourceType":         {kind: kString},
		"id":                   {kind: kString},
		"meta":                 {kind: kObject, typ: "Meta"},
		"language":             {kind: kString},
		"text":                 {kind: kObject, typ: "Narrative"},
		"identifier":           {kind: kObject, typ: "Identifier", array: true},
		"basedOn":              {kind: kObject, typ: "Reference", array: true},
		"partOf":               {kind: kObject, typ: "Reference", array: true},
		"status":               {kind: kString},
		"category":             {kind: kObject, typ: "CodeableConcept", array: true},
		"code":                 {kind: kObject, typ: "CodeableConcept"},
		"subject":              {kind: kObject, typ: "Reference"},
		"focus":                {kind: kObject, typ: "Reference", array: true},
		"encounter":            {kind: kObject, typ: "Reference"},
		"effectiveDateTime":    {kind: kString, choice: "effective"},
		"effectivePeriod":      {kind: kObject, typ: "Period", choice: "effective"},
		"effectiveInstant":     {kind: kString, choice: "effective"},
		"issued":               {kind: kString},
		"performer":            {kind: kObject, typ: "Reference", array: true},
		"valueQuantity":        {kind: kObject, typ: "Quantity", choice: "value"},
		"valueCodeableConcept": {kind: kObject, typ: "CodeableConcept", choice: "value"},
		"valueString":          {kind: kString, choice: "value"},
		"valueBoolean":         {kind: kBool, choice: "value"},
		"valueInteger":         {kind: kInteger, choice: "value"},
		"valueDateTime":        {kind: kString, choice: "value"},
		"valuePeriod":          {kind: kObject, typ: "Period", choice: "value"},
		"dataAbsentReason":     {kind: kObject, typ: "CodeableConcept"},
		"interpretation":       {kind: kObject, typ: "CodeableConcept", array: true},
		"note":                 {kind: kObject, typ: "Annotation", array: true},
		"bodySite":             {kind: kObject, typ: "CodeableConcept"},
		"method":               {kind: kObject, typ: "CodeableConcept"},
		"specimen":             {kind: kObject, typ: "Reference"},
		"device":               {kind: kObject, typ: "Reference"},
		"referenceRange":       {kind: kObject, typ: "ReferenceRange", array: true},
		"hasMember":            {kind: kObject, typ: "Reference", array: true},
		"derivedFrom":          {kind: kObject, typ: "Reference", array: true},
		"component":            {kind: kObject, typ: "Component", array: true},
	},
	"Component": {
		"code":                 {kind: kObject, typ: "CodeableConcept"},
		"valueQuantity":        {kind: kObject, typ: "Quantity", choice: "value"},
		"valueCodeableConcept": {kind: kObject, typ: "CodeableConcept", choice: "value"},
		"valueString":          {kind: kString, choice: "value"},
		"valueBoolean":         {kind: kBool, choice: "value"},
		"valueInteger":         {kind: kInteger, choice: "value"},
		"valueDateTime":        {kind: kString, choice: "value"},
		"valuePeriod":          {kind: kObject, typ: "Period", choice: "value"},
		"dataAbsentReason":     {kind: kObject, typ: "CodeableConcept"},
		"interpretation":       {kind: kObject, typ: "CodeableConcept", array: true},
		"referenceRange":       {kind: kObject, typ: "ReferenceRange", array: true},
	},
	"Patient": {
		"resourceType": {kind: kString},
		"id":           {kind: kString},
		"meta":         {kind: kObject, typ: "Meta"},
		"language":     {kind: kString},
		"text":         {kind: kObject, typ: "Narrative"},
		"identifier":   {kind: kObject, typ: "Identifier", array: true},
		"active":       {kind: kBool},
		"name":         {kind: kObject, typ: "HumanName", array: true},
		"telecom":      {kind: kObject, typ: "ContactPoint", array: true},
		"gender":       {kind: kString},
		"birthDate":    {kind: kString},
	},
	"HumanName": {
		"use":    {kind: kString},
		"text":   {kind: kString},
		"family": {kind: kString},
		"given":  {kind: kString, array: true},
		"prefix": {kind: kString, array: true},
		"suffix": {kind: kString, array: true},
		"period": {kind: kObject, typ: "Period"},
	},
	"ContactPoint": {
		"system": {kind: kString},
		"value":  {kind: kString},
		"use":    {kind: kString},
		"rank":   {kind: kInteger},
		"period": {kind: kObject, typ: "Period"},
	},
	"Meta": {
		"versionId":   {kind: kString},
		"lastUpdated": {kind: kString},
		"source":      {kind: kString},
		"profile":     {kind: kString, array: true},
		"security":    {kind: kObject, typ: "Coding", array: true},
		"tag":         {kind: kObject, typ: "Coding", array: true},
	},
	"Narrative": {
		"status": {kind: kString},
		"div":    {kind: kString},
	},
	"Coding": {
		"system":       {kind: kString},
		"version":      {kind: kString},
		"code":         {kind: kString},
		"display":      {kind: kString},
		"userSelected": {kind: kBool},
	},
	"CodeableConcept": {
		"coding": {kind: kObject, typ: "Coding", array: true},
		"text":   {kind: kString},
	},
	"Reference": {
		"reference":  {kind: kString},
		"type":       {kind: kString},
		"identifier": {kind: kObject, typ: "Identifier"},
		"display":    {kind: kString},
	},
	"Identifier": {
		"use":      {kind: kString},
		"type":     {kind: kObject, typ: "CodeableConcept"},
		"system":   {kind: kString},
		"value":    {kind: kString},
		"period":   {kind: kObject, typ: "Period"},
		"assigner": {kind: kObject, typ: "Reference"},
	},
	"Quantity": {
		"value":      {kind: kDecimal},
		"comparator": {kind: kString},
		"unit":       {kind: kString},
		"system":     {kind: kString},
		"code":       {kind: kString},
	},
	"Range": {
		"low":  {kind: kObject, typ: "Quantity"},
		"high": {kind: kObject, typ: "Quantity"},
	},
	"Period": {
		"start": {kind: kString},
		"end":   {kind: kString},
	},
	"Annotation": {
		"authorReference": {kind: kObject, typ: "Reference", choice: "author"},
		"authorString":    {kind: kString, choice: "author"},
		"time":            {kind: kString},
		"text":            {kind: kString},
	},
	"ReferenceRange": {
		"low":       {kind: kObject, typ: "Quantity"},
		"high":      {kind: kObject, typ: "Quantity"},
		"type":      {kind: kObject, typ: "CodeableConcept"},
		"appliesTo": {kind: kObject, typ: "CodeableConcept", array: true},
		"age":       {kind: kObject, typ: "Range"},
		"text":      {kind: kString},
	},
	// Bundle as accepted on input: a batch or transaction of Observations.
	"Bundle": {
		"resourceType": {kind: kString},
		"id":           {kind: kString},
		"meta":         {kind: kObject, typ: "Meta"},
		"type":         {kind: kString},
		"timestamp":    {kind: kString},
		"entry":        {kind: kObject, typ: "BundleEntry", array: true},
	},
	"BundleEntry": {
		"fullUrl":  {kind: kString},
		"resource": {kind: kObject, typ: "Observation"},
		"request":  {kind: kObject, typ: "BundleRequest"},
	},
	"BundleRequest": {
		"method": {kind: kString},
		"url":    {kind: kString},
	},
}

// resourceTypes are the schema names that are resources: their objects carry resourceType.
var resourceTypes = map[string]bool{"Observation": true, "Patient": true, "Bundle": true}

// compiledType is a datatype of schema as the strict walk reads it: each element with a bit
// of its own (for "seen") and of its choice group, so that checking an object allocates
// nothing.
type compiledType struct {
	elems        map[string]compiledElem
	resourceType uint64 // the bit of resourceType, 0 if the type has none
}

// compiledElem is an elem with its bits.
type compiledElem struct {
	elem
	bit, choiceBit uint64
}

// compiled is schema compiled for the walk.
var compiled = compileSchema(schema)

// compileSchema gives every element of each datatype a bit (a datatype has fewer than 64
// elements) and every choice group one.
func compileSchema(s map[string]map[string]elem) map[string]compiledType {
	out := make(map[string]compiledType, len(s))
	for typ, elems := range s {
		if len(elems) > 64 {
			panic("fhir: datatype " + typ + " has more than 64 elements")
		}
		names := make([]string, 0, len(elems))
		for name := range elems {
			names = append(names, name)
		}
		sort.Strings(names)
		ct := compiledType{elems: make(map[string]compiledElem, len(elems))}
		groups := map[string]uint64{}
		for i, name := range names {
			e := elems[name]
			ce := compiledElem{elem: e, bit: 1 << uint(i)}
			if e.choice != "" {
				if _, ok := groups[e.choice]; !ok {
					groups[e.choice] = 1 << uint(len(groups))
				}
				ce.choiceBit = groups[e.choice]
			}
			ct.elems[name] = ce
			if name == "resourceType" {
				ct.resourceType = ce.bit
			}
		}
		out[typ] = ct
	}
	return out
}
