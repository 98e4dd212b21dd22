package awsdev

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
)

// protocol is how a service encodes requests and answers.
type protocol int

const (
	protoJSON  protocol = iota + 1 // awsJson1_1: Secrets Manager, SSM
	protoQuery                     // awsQuery: STS (XML answers)
	protoREST                      // restJson1: Roles Anywhere
)

// apiError is an error answer: an HTTP status and the service's error type.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// Constructors for the errors most operations share.

func errValidation(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "ValidationException", format, args...)
}

func errInvalidParameter(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "InvalidParameterException", format, args...)
}

func errInvalidRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "InvalidRequestException", format, args...)
}

func errSMNotFound(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "ResourceNotFoundException", format, args...)
}

// lengthError is the wording AWS uses for a member longer than its model allows.
func lengthError(member string, max int) *apiError {
	return errValidation("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", member, max)
}

// writeError answers err in the encoding of proto.
func writeError(w http.ResponseWriter, proto protocol, requestID string, err *apiError) {
	switch proto {
	case protoQuery:
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(err.status)
		typ := "Sender"
		if err.status >= 500 {
			typ = "Receiver"
		}
		writeXML(w, queryErrorResponse{
			Xmlns:     stsNamespace,
			Error:     queryError{Type: typ, Code: err.code, Message: err.message},
			RequestID: requestID,
		})
	case protoREST:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-ErrorType", err.code)
		w.WriteHeader(err.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": err.message})
	default:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", err.code)
		w.WriteHeader(err.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": err.code, "message": err.message})
	}
}

type queryErrorResponse struct {
	XMLName   xml.Name   `xml:"ErrorResponse"`
	Xmlns     string     `xml:"xmlns,attr"`
	Error     queryError `xml:"Error"`
	RequestID string     `xml:"RequestId"`
}

type queryError struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeXML(w http.ResponseWriter, v any) {
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(v)
}
