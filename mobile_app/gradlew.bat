@rem Starts the Gradle version pinned in gradle\wrapper\gradle-wrapper.properties.
@rem The wrapper jar is not kept in this repository: run "gradle wrapper" once, or open
@rem the project in Android Studio, which creates it (and replaces this script with Gradle's own).
@echo off
setlocal
set APP_HOME=%~dp0
set WRAPPER_JAR=%APP_HOME%gradle\wrapper\gradle-wrapper.jar
if not exist "%WRAPPER_JAR%" (
  echo gradlew: %WRAPPER_JAR% is missing. Run "gradle wrapper" here once, or open the project in Android Studio. 1>&2
  exit /b 1
)
set JAVACMD=java
if defined JAVA_HOME set JAVACMD=%JAVA_HOME%\bin\java
"%JAVACMD%" %JAVA_OPTS% %GRADLE_OPTS% "-Dorg.gradle.appname=gradlew" -classpath "%WRAPPER_JAR%" org.gradle.wrapper.GradleWrapperMain %*
exit /b %ERRORLEVEL%
