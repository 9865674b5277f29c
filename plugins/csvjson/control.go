package csvjson

import (
	"fmt"
	"strconv"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/dmsjson"
	"github.com/dmsbridge/dmsbridge/plugins/tabledef"
)

// tableDefNames maps DMS column types to the type names DMS writes in
// control.table-def (observed: INT32, STRING, WSTRING, TIMESTAMP).
var tableDefNames = map[tabledef.Type]string{
	tabledef.TypeInt1: "INT8", tabledef.TypeInt2: "INT16", tabledef.TypeInt4: "INT32", tabledef.TypeInt8: "INT64",
	tabledef.TypeUInt1: "UINT8", tabledef.TypeUInt2: "UINT16", tabledef.TypeUInt4: "UINT32", tabledef.TypeUInt8: "UINT64",
	tabledef.TypeDateTime: "TIMESTAMP", tabledef.TypeByte: "BYTES", tabledef.TypeDate: "DATE", tabledef.TypeTime: "TIME",
	tabledef.TypeNumeric: "NUMERIC", tabledef.TypeReal4: "REAL4", tabledef.TypeReal8: "REAL8", tabledef.TypeString: "STRING",
	tabledef.TypeBlob: "BLOB", tabledef.TypeClob: "CLOB", tabledef.TypeBoolean: "BOOLEAN",
}

// tableDefJSON renders a table's control.table-def object.
func tableDefJSON(t *tabledef.Table) []byte {
	b := []byte(`{"columns":{`)
	for i, c := range t.Columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(dmsjson.AppendStringNoCheck(b, c.Name), `:{"type":`...)
		b = dmsjson.AppendStringNoCheck(b, tableDefNames[c.Type])
		switch c.Type {
		case tabledef.TypeString, tabledef.TypeByte:
			if c.Length > 0 {
				b = strconv.AppendInt(append(b, `,"length":`...), int64(c.Length), 10)
			}
		case tabledef.TypeNumeric:
			b = strconv.AppendInt(append(b, `,"precision":`...), int64(c.Precision), 10)
			b = strconv.AppendInt(append(b, `,"scale":`...), int64(c.Scale), 10)
		}
		b = strconv.AppendBool(append(b, `,"nullable":`...), c.Nullable)
		b = append(b, '}')
	}
	b = append(b, '}')
	if len(t.PrimaryKey) > 0 {
		b = append(b, `,"primary-key":[`...)
		for j, i := range t.PrimaryKey {
			if j > 0 {
				b = append(b, ',')
			}
			b = dmsjson.AppendStringNoCheck(b, t.Columns[i].Name)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// control turns a table-start signal into the control records of
// target_table_prep_mode, or filters it.
func (w *worker) control(m *service.Message, ctl string) {
	if ctl != "table-start" {
		w.fail(m, nil, reasonBadMessage, fmt.Sprintf(": dms_control %q is not table-start", ctl))
		return
	}
	schema, _ := metaString(m, metaSchema)
	table, _ := metaString(m, metaTable)
	p := w.c.bySchema[schema][table]
	if p == nil {
		w.fail(m, nil, reasonUnknownTbl, fmt.Sprintf(": table-start signal for unknown table: schema %q table %q is not in the table definition", schema, table))
		return
	}
	var ops []int
	switch w.c.o.prepMode {
	case "drop-and-create":
		ops = []int{opDropTable, opCreateTable}
	case "truncate":
		ops = []int{opCreateTable}
	}
	outs := make([]*service.Message, len(ops))
	for i := range ops {
		outs[i] = m
		if i > 0 {
			outs[i] = m.Copy()
		}
	}
	for i, op := range ops {
		dst := w.tmp[:0]
		dst = append(dst, '{')
		if w.c.o.includeControl {
			dst = append(dst, `"control":`...)
			if op == opCreateTable {
				dst = append(dst, `{"table-def":`...)
				dst = append(dst, p.tableDef...)
				dst = append(dst, '}')
			} else {
				dst = append(dst, '{', '}')
			}
			dst = append(dst, ',')
		}
		dst = append(dst, `"metadata":{"timestamp":`...)
		dst = append(dst, w.ts...)
		dst = append(dst, p.metaA[op]...)
		if w.c.o.includePartitionValue {
			dst = append(dst, `,"partition-key-value":`...)
			dst = dmsjson.AppendStringNoCheck(dst, w.c.o.taskID)
		}
		dst = append(dst, p.metaB...)
		dst = append(dst, '}', '}')
		w.tmp = dst
		start := len(w.slab)
		if w.c.o.pretty {
			w.slab = indent(w.slab, dst)
		} else {
			w.slab = append(append(w.slab, dst...), '\n')
		}
		end := len(w.slab)
		outs[i].SetBytes(w.slab[start:end:end])
		outs[i].MetaSetMut(metaPartitionKey, p.ctlKeyAny)
		outs[i].MetaSetMut(metaOperation, p.opAny[op])
		w.rowCounts[p.idx*numOps+op]++
	}
	w.controls = append(w.controls, controlOut{msg: m, out: outs})
}
