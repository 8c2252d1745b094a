package org.rsnetedge.core;

import com.google.gson.JsonElement;
import com.google.gson.JsonPrimitive;
import java.util.regex.Pattern;

/** JSON type checks that mirror Python's json module + isinstance checks. */
final class Json {
  private static final Pattern INT_LITERAL = Pattern.compile("-?\\d+");

  private Json() {}

  /** A JSON number written without fraction or exponent (Python json gives an int). */
  static boolean isInt(JsonElement e) {
    if (e == null || !e.isJsonPrimitive()) return false;
    JsonPrimitive p = e.getAsJsonPrimitive();
    return p.isNumber() && INT_LITERAL.matcher(p.getAsString()).matches()
        && p.getAsString().length() < 10;
  }

  /** A finite JSON number (Python: int or float, not bool, math.isfinite). */
  static boolean isNum(JsonElement e) {
    if (e == null || !e.isJsonPrimitive()) return false;
    JsonPrimitive p = e.getAsJsonPrimitive();
    if (!p.isNumber()) return false;
    double d = p.getAsDouble();
    return !Double.isNaN(d) && !Double.isInfinite(d);
  }

  static boolean isString(JsonElement e) {
    return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isString();
  }

  static boolean isNull(JsonElement e) {
    return e == null || e.isJsonNull();
  }

  /** Python-ish repr for error messages. */
  static String repr(JsonElement e) {
    return e == null ? "None" : e.toString();
  }

  /** Python repr() of a parsed JSON value (None, True, 'text', 2, [..]), for messages that read as Python's. */
  static String pyRepr(JsonElement e) {
    if (e == null || e.isJsonNull()) return "None";
    if (e.isJsonPrimitive()) {
      JsonPrimitive p = e.getAsJsonPrimitive();
      if (p.isBoolean()) return p.getAsBoolean() ? "True" : "False";
      if (p.isString()) return pyStr(p.getAsString());
      return p.getAsString();
    }
    return e.toString();
  }

  /** Python repr() of a str: single quotes unless the text has one and no double quote. */
  static String pyStr(String s) {
    if (s.indexOf('\'') >= 0 && s.indexOf('"') < 0) return "\"" + s + "\"";
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'";
  }

  /** Python repr() of a tuple of str: ('a', 'b'). */
  static String pyTuple(java.util.List<String> items) {
    StringBuilder sb = new StringBuilder("(");
    for (int i = 0; i < items.size(); i++) sb.append(i > 0 ? ", " : "").append(pyStr(items.get(i)));
    return sb.append(items.size() == 1 ? ",)" : ")").toString();
  }
}
