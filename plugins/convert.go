package plugins

import (
	"fmt"

	pb "github.com/pvhub/pvhub/plugins/internal/transportv1"
)

// The conversions between the plain Go event model and its protobuf form.

func dataToProto(d Data) *pb.Data {
	return &pb.Data{
		Kind:     pb.DataKind(d.Kind),
		Float64S: d.Float64s,
		Int64S:   d.Int64s,
		Strings:  d.Strings,
		Bytes:    d.Bytes,
	}
}

func dataFromProto(d *pb.Data) Data {
	if d == nil {
		return Data{}
	}
	return Data{
		Kind:     Kind(d.GetKind()),
		Float64s: d.GetFloat64S(),
		Int64s:   d.GetInt64S(),
		Strings:  d.GetStrings(),
		Bytes:    d.GetBytes(),
	}
}

func rangeToProto(r Range) *pb.Range {
	if r == (Range{}) {
		return nil
	}
	return &pb.Range{Low: r.Low, High: r.High}
}

func rangeFromProto(r *pb.Range) Range { return Range{Low: r.GetLow(), High: r.GetHigh()} }

func eventToProto(e Event) (*pb.Event, error) {
	switch e := e.(type) {
	case Connection:
		return &pb.Event{Event: &pb.Event_Connection{Connection: &pb.Connection{
			Name: e.Name, Connected: e.Connected, Read: e.Read, Write: e.Write, WriteDenied: e.WriteDenied,
		}}}, nil
	case Metadata:
		return &pb.Event{Event: &pb.Event_Metadata{Metadata: &pb.Metadata{
			Name:        e.Name,
			Type:        pb.NativeType(e.Type),
			Count:       uint32(e.Count),
			Units:       e.Units,
			Precision:   int32(e.Precision),
			Display:     rangeToProto(e.Display),
			Control:     rangeToProto(e.Control),
			Warning:     rangeToProto(e.Warning),
			Alarm:       rangeToProto(e.Alarm),
			EnumLabels:  e.EnumLabels,
			Description: e.Description,
		}}}, nil
	case Value:
		return &pb.Event{Event: &pb.Event_Value{Value: &pb.Value{
			Name:     e.Name,
			Data:     dataToProto(e.Data),
			Seconds:  e.Seconds,
			Nanos:    e.Nanos,
			Status:   e.Status,
			Severity: e.Severity,
		}}}, nil
	case PutResult:
		return &pb.Event{Event: &pb.Event_PutResult{PutResult: &pb.PutResult{
			Name: e.Name, Id: e.ID, Error: e.Err,
		}}}, nil
	}
	return nil, fmt.Errorf("plugins: unknown event type %T", e)
}

func eventFromProto(e *pb.Event) (Event, error) {
	switch e := e.GetEvent().(type) {
	case *pb.Event_Connection:
		c := e.Connection
		return Connection{Name: c.GetName(), Connected: c.GetConnected(), Read: c.GetRead(), Write: c.GetWrite(), WriteDenied: c.GetWriteDenied()}, nil
	case *pb.Event_Metadata:
		m := e.Metadata
		return Metadata{
			Name:        m.GetName(),
			Type:        Type(m.GetType()),
			Count:       int(m.GetCount()),
			Units:       m.GetUnits(),
			Precision:   int(m.GetPrecision()),
			Display:     rangeFromProto(m.GetDisplay()),
			Control:     rangeFromProto(m.GetControl()),
			Warning:     rangeFromProto(m.GetWarning()),
			Alarm:       rangeFromProto(m.GetAlarm()),
			EnumLabels:  m.GetEnumLabels(),
			Description: m.GetDescription(),
		}, nil
	case *pb.Event_Value:
		v := e.Value
		return Value{
			Name:     v.GetName(),
			Data:     dataFromProto(v.GetData()),
			Seconds:  v.GetSeconds(),
			Nanos:    v.GetNanos(),
			Status:   v.GetStatus(),
			Severity: v.GetSeverity(),
		}, nil
	case *pb.Event_PutResult:
		r := e.PutResult
		return PutResult{Name: r.GetName(), ID: r.GetId(), Err: r.GetError()}, nil
	}
	return nil, fmt.Errorf("plugins: unknown event %T", e.GetEvent())
}
