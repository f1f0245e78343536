package rawjson

import (
	"encoding/json"
	"testing"
)

func TestObjectKeepsTheRawValueByteForByte(t *testing.T) {
	type head struct {
		ID   string `json:"id"`
		Note string `json:"note,omitempty"`
	}
	for _, tc := range []struct {
		name string
		head any
		raw  string
		want string
	}{
		{"html characters", head{ID: "a&b"}, `{"&":"<tag>"}`, `{"id":"a&b","data":{"&":"<tag>"}}`},
		{"line separators", head{ID: "x"}, "\"\u2028\u2029\"", "{\"id\":\"x\",\"data\":\"\u2028\u2029\"}"},
		{"escapes stay escapes", head{ID: "x"}, `"caf\u00e9"`, `{"id":"x","data":"caf\u00e9"}`},
		{"whitespace and key order inside", head{ID: "x"}, "{ \"z\" : 1 ,\n\t\"a\":[ 1, 2 ] }", "{\"id\":\"x\",\"data\":{ \"z\" : 1 ,\n\t\"a\":[ 1, 2 ] }}"},
		{"whitespace around is not the value", head{ID: "x"}, " \n[1] \t", `{"id":"x","data":[1]}`},
		{"empty head", struct{}{}, `null`, `{"data":null}`},
		{"big numbers", head{ID: "x"}, `12345678901234567890.000`, `{"id":"x","data":12345678901234567890.000}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Object(tc.head, "data", []byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("Object = %s, want %s", got, tc.want)
			}
			var back struct {
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("output is not JSON: %v", err)
			}
		})
	}
}

func TestObjectRefusesBadInput(t *testing.T) {
	if _, err := Object(struct{}{}, "data", []byte(`{"a":`)); err == nil {
		t.Fatal("invalid raw value: no error")
	}
	if _, err := Object([]int{1}, "data", []byte(`1`)); err == nil {
		t.Fatal("head that is not an object: no error")
	}
}
