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
}
