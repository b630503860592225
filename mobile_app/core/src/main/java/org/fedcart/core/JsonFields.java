package org.fedcart.core;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import com.google.gson.TypeAdapter;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.StringReader;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Strict, typed access to the fields of a JSON object.
 *
 * <p>Gson's convenience parser is lenient (it accepts unquoted strings, single quotes and
 * trailing garbage), which would let a broken metadata file through; this reader is strict
 * and names the offending field in every error so the user sees what is wrong.
 */
final class JsonFields {
    private static final TypeAdapter<JsonElement> ELEMENTS = new Gson().getAdapter(JsonElement.class);
    /** Largest integer a JSON number (an IEEE double) holds exactly; model versions are millisecond timestamps. */
    private static final double MAX_EXACT_INTEGER = 9007199254740991.0;

    private final JsonObject object;
    private final String context;

    private JsonFields(JsonObject object, String context) {
        this.object = object;
        this.context = context;
    }

    /** Parses {@code text} as exactly one JSON object; {@code context} prefixes error messages. */
    static JsonFields parse(String text, String context) throws FormatException {
        JsonElement root = parseStrict(text, context);
        if (!root.isJsonObject()) {
            throw new FormatException(context + ": expected a JSON object");
        }
        return new JsonFields(root.getAsJsonObject(), context);
    }

    /** Wraps an object found inside another document (for example one catalogue entry). */
    static JsonFields of(JsonElement element, String context) throws FormatException {
        if (element == null || !element.isJsonObject()) {
            throw new FormatException(context + ": expected a JSON object");
        }
        return new JsonFields(element.getAsJsonObject(), context);
    }

    private static JsonElement parseStrict(String text, String context) throws FormatException {
        if (text == null) {
            throw new FormatException(context + ": empty document");
        }
        JsonReader reader = new JsonReader(new StringReader(text));
        reader.setLenient(false);
        JsonElement root;
        try {
            root = ELEMENTS.read(reader);
        } catch (IOException | RuntimeException e) {
            throw new FormatException(context + ": not valid JSON (" + e.getMessage() + ")", e);
        }
        requireEnd(reader, context);
        return root;
    }

    private static void requireEnd(JsonReader reader, String context) throws FormatException {
        try {
            if (reader.peek() == JsonToken.END_DOCUMENT) {
                return;
            }
        } catch (IOException e) {
            throw new FormatException(context + ": unexpected data after the JSON value", e);
        }
        throw new FormatException(context + ": unexpected data after the JSON value");
    }

    boolean has(String name) {
        return object.has(name) && !object.get(name).isJsonNull();
    }

    String string(String name) throws FormatException {
        JsonPrimitive value = primitive(name);
        if (!value.isString()) {
            throw error(name, "must be a string");
        }
        return value.getAsString();
    }

    String nonEmptyString(String name) throws FormatException {
        String value = string(name);
        if (value.trim().isEmpty()) {
            throw error(name, "must not be empty");
        }
        return value;
    }

    double number(String name) throws FormatException {
        JsonPrimitive value = primitive(name);
        if (!value.isNumber()) {
            throw error(name, "must be a number");
        }
        double number = value.getAsDouble();
        if (Double.isNaN(number) || Double.isInfinite(number)) {
            throw error(name, "must be a finite number");
        }
        return number;
    }

    long nonNegativeInteger(String name) throws FormatException {
        double number = number(name);
        if (number != Math.rint(number) || number < 0 || number > MAX_EXACT_INTEGER) {
            throw error(name, "must be a non-negative integer");
        }
        return (long) number;
    }

    /** A non-empty array of distinct, non-empty strings, in document order. */
    List<String> uniqueStrings(String name) throws FormatException {
        JsonArray array = array(name);
        if (array.size() == 0) {
            throw error(name, "must not be empty");
        }
        List<String> values = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (JsonElement item : array) {
            String value = stringItem(name, item);
            if (!seen.add(value)) {
                throw error(name, "lists '" + value + "' twice");
            }
            values.add(value);
        }
        return Collections.unmodifiableList(values);
    }

    /** A nested object, read with the same strictness; its errors name {@code name}. */
    JsonFields object(String name) throws FormatException {
        JsonElement value = required(name);
        if (!value.isJsonObject()) {
            throw error(name, "must be an object");
        }
        return new JsonFields(value.getAsJsonObject(), context + ": " + name);
    }

    /** The names of the fields present, for documents that allow no others. */
    Set<String> names() {
        return Collections.unmodifiableSet(object.keySet());
    }

    JsonArray array(String name) throws FormatException {
        JsonElement value = required(name);
        if (!value.isJsonArray()) {
            throw error(name, "must be an array");
        }
        return value.getAsJsonArray();
    }

    private String stringItem(String name, JsonElement item) throws FormatException {
        if (!item.isJsonPrimitive() || !item.getAsJsonPrimitive().isString()
                || item.getAsString().trim().isEmpty()) {
            throw error(name, "must hold non-empty strings only");
        }
        return item.getAsString();
    }

    private JsonPrimitive primitive(String name) throws FormatException {
        JsonElement value = required(name);
        if (!value.isJsonPrimitive()) {
            throw error(name, "must be a plain value");
        }
        return value.getAsJsonPrimitive();
    }

    private JsonElement required(String name) throws FormatException {
        if (!has(name)) {
            throw error(name, "is missing");
        }
        return object.get(name);
    }

    FormatException error(String name, String problem) {
        return new FormatException(context + ": field '" + name + "' " + problem);
    }
}
