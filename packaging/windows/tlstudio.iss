; Inno Setup script for Transfer Learning Studio (Windows installer).
; Build after packaging/build.sh (or the CI step) has produced dist\tlstudio\ :
;   iscc /DAppVersion=0.1.0 packaging\windows\tlstudio.iss
; Output: dist\tlstudio-<version>-windows-x86_64-setup.exe
; Per-user install (no administrator rights, no UAC prompt) into %LOCALAPPDATA%\Programs\Transfer Learning Studio,
; a Start-menu entry, the .tlsproj file association (per user, HKCU) and an uninstaller.
; Inno Setup, not NSIS: the bundle (torch + Qt) is well over 1 GB and NSIS cannot make installers over 2 GB,
; while Inno Setup spans any size with DiskSpanning off and LZMA2 streaming (see packaging/README.md).

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "Transfer Learning Studio"
#define AppExe "tlstudio.exe"
#define SourceDir "..\..\dist\tlstudio"

[Setup]
AppId={{6C1B7E0A-2F4D-4B7E-9A43-5D1E3C9F2A71}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=Transfer Learning Studio contributors
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=tlstudio-{#AppVersion}-windows-x86_64-setup
SetupIconFile=..\..\resources\icons\tlstudio.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
Compression=lzma2/normal
SolidCompression=no
LZMAUseSeparateProcess=yes
DiskSpanning=no
WizardStyle=modern
ChangesAssociations=yes
CloseApplications=yes
MinVersion=10.0

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{userdocs}"
Name: "{group}\{cm:UninstallProgram,{#AppName}}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{userdocs}"; Tasks: desktopicon

[Registry]
; .tlsproj -> Transfer Learning Studio (HKA = HKCU for a per-user install, HKLM when installed for all users)
Root: HKA; Subkey: "Software\Classes\.tlsproj"; ValueType: string; ValueName: ""; ValueData: "tlstudio.project"; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.tlsproj\OpenWithProgids"; ValueType: string; ValueName: "tlstudio.project"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\tlstudio.project"; ValueType: string; ValueName: ""; ValueData: "{#AppName} project"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\tlstudio.project\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"
Root: HKA; Subkey: "Software\Classes\tlstudio.project\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".tlsproj"; ValueData: ""; Flags: uninsdeletekey

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Only what the program itself wrote inside its folder; the user's runs and settings stay.
Type: filesandordirs; Name: "{app}\_internal\__pycache__"
